package engine

import (
	"testing"
)

func TestParseDF(t *testing.T) {
	tests := []struct {
		name, in string
		want     FSUsage
		pct      int
		wantErr  bool
	}{
		{name: "overlay", in: "Filesystem     1024-blocks     Used Available Capacity Mounted on\noverlay          102400000 81920000  20480000      80% /\n",
			want: FSUsage{Size: 102400000 << 10, Used: 81920000 << 10, Available: 20480000 << 10}, pct: 80},
		{name: "reserved blocks do not count as free", in: "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 850 100 90% /\n",
			want: FSUsage{Size: 1000 << 10, Used: 850 << 10, Available: 100 << 10}, pct: 90},
		{name: "name with spaces", in: "Filesystem 1024-blocks Used Available Capacity Mounted on\nmy disk 10 1 9 10% /\n",
			want: FSUsage{Size: 10 << 10, Used: 1 << 10, Available: 9 << 10}, pct: 10},
		{name: "busybox error", in: "df: /: No such file or directory\n", wantErr: true},
		{name: "no data line", in: "Filesystem 1024-blocks Used Available Capacity Mounted on\n", wantErr: true},
		{name: "not numbers", in: "Filesystem 1024-blocks Used Available Capacity Mounted on\noverlay a b c 1% /\n", wantErr: true},
		{name: "negative", in: "Filesystem 1024-blocks Used Available Capacity Mounted on\noverlay 10 -1 c 1% /\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDF(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDF error %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got != tt.want || got.Percent() != tt.pct {
				t.Fatalf("ParseDF = %+v (%d%%), want %+v (%d%%)", got, got.Percent(), tt.want, tt.pct)
			}
		})
	}
	if p := (FSUsage{}).Percent(); p != 0 {
		t.Fatalf("empty filesystem: %d%%, want 0", p)
	}
}

func TestShortImageID(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef0123": "0123456789ab",
		"0123456789abcdef":            "0123456789ab",
		"abc":                         "abc",
	} {
		if got := shortImageID(in); got != want {
			t.Errorf("shortImageID(%q) = %q, want %q", in, got, want)
		}
	}
}
