package opscore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// With one timer for every hold, each running command's `>` still comes
// no sooner than the hold after its own start, the holds of commands that
// ended meanwhile are let go without a second `>`, and every hold ends.
func TestStartHoldsShareATimer(t *testing.T) {
	const d = 60 * time.Millisecond
	h := newTestHandler()
	s := startServer(t, h, WithStartHold(d))
	a := greeted(t, s, 1, 1)
	sent := map[string]time.Time{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprint(i * 10)
		sent[id] = time.Now()
		a.send(id + " block\n")
		a.send(fmt.Sprintf("%d ping\n", i*10+1)) // ends at once: `>` and end together
		time.Sleep(d / 3)
	}
	got := map[string]int{}
	for range 3*2 + 3 { // three pings' `>` and `:`, three blocks' `>`
		l := a.next()
		f := strings.Fields(l)
		got[f[1]+" "+f[2]]++
		if f[2] == ">" {
			if at, ok := sent[f[1]]; ok {
				if el := time.Since(at); el < d {
					t.Errorf("command %s: `>` after %v, before its %v hold", f[1], el, d)
				}
			}
		}
	}
	close(h.release)
	for range 3 {
		got[strings.Fields(a.next())[1]+" :"]++
	}
	for i := 1; i <= 3; i++ {
		for _, k := range []string{fmt.Sprintf("%d >", i*10), fmt.Sprintf("%d :", i*10), fmt.Sprintf("%d >", i*10+1), fmt.Sprintf("%d :", i*10+1)} {
			if got[k] != 1 {
				t.Errorf("%q %d times, want once (all: %v)", k, got[k], got)
			}
		}
	}
}
