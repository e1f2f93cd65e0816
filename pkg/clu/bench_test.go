package clu

import (
	"testing"
)

// Camera lines as flicamera writes them (Python json.dumps, ", " and ": "
// separators), from the relay's hot path.
var benchLines = map[string]string{
	"status": `{"header": {"command_id": 12, "commander_id": "5b0f2a3c-6a47-4a1e-9d2b-8f1f3e2d4c5b", "message_code": "i", "internal": false, "sender": "gfa1"}, ` +
		`"data": {"status": {"camera": "gfa1n", "model": "MicroLine ML4240", "serial": "ML0112718", "fwrev": 0, "hwrev": 0, "hbin": 1, "vbin": 1, ` +
		`"visible_area": [0, 0, 2048, 2048], "area": [0, 0, 2048, 2048], "ccd_temp": -10.02, "base_temp": 21.3, "exposure_time_left": 0.0, "cooler_power": 47.5}}}`,
	"text":    `{"header": {"command_id": 3, "commander_id": "5b0f2a3c-6a47-4a1e-9d2b-8f1f3e2d4c5b", "message_code": "i", "internal": false, "sender": "gfa1"}, "data": {"text": "flood 123456"}}`,
	"running": `{"header": {"command_id": 3, "commander_id": "5b0f2a3c-6a47-4a1e-9d2b-8f1f3e2d4c5b", "message_code": ">", "internal": true, "sender": "gfa1"}, "data": {}}`,
}

func BenchmarkParseReply(b *testing.B) {
	for _, name := range []string{"status", "text", "running"} {
		line := []byte(benchLines[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := ParseReply(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
