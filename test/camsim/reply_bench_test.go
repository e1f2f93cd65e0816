package camsim

import (
	"testing"

	"github.com/sdss/fliswarm/pkg/clu"
)

func BenchmarkMarshalReply(b *testing.B) {
	r, err := clu.ParseReply([]byte(`{"header": {"command_id": 12, "commander_id": "5b0f2a3c-6a47-4a1e-9d2b-8f1f3e2d4c5b", "message_code": "i", "internal": false, "sender": "gfa1"}, ` +
		`"data": {"status": {"camera": "gfa1n", "model": "MicroLine ML4240", "serial": "ML0112718", "fwrev": 0, "hwrev": 0, "hbin": 1, "vbin": 1, ` +
		`"visible_area": [0, 0, 2048, 2048], "area": [0, 0, 2048, 2048], "ccd_temp": -10.02, "base_temp": 21.3, "exposure_time_left": 0.0, "cooler_power": 47.5}}}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalReply(r); err != nil {
			b.Fatal(err)
		}
	}
}
