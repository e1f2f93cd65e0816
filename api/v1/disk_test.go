package v1

import "testing"

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1 kB", 1234: "1.23 kB", 999_499: "999 kB", 999_500: "1 MB",
		123_456_789: "123 MB", 1_200_000_000: "1.2 GB", 100 << 30: "107 GB",
	} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDiskSummary(t *testing.T) {
	d := &DiskStatus{Images: 3, ImagesSize: 1_200_000_000, ImagesReclaimable: 800_000_000}
	if got, want := d.Summary(), "3 images, 1.2 GB (800 MB reclaimable)"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	d.FSSize, d.FSUsed, d.FSPercent = 100_000_000_000, 87_000_000_000, 87
	if got, want := d.Summary(), "3 images, 1.2 GB (800 MB reclaimable); data root 87% of 100 GB used"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if got, want := (&DiskStatus{Images: 1, ImagesSize: 5000}).Summary(), "1 image, 5 kB (0 B reclaimable)"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}
