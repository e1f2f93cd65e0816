package opscore

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestUserHook: the hook hears of every user that connects and goes, with
// its id and peer address.
func TestUserHook(t *testing.T) {
	var mu sync.Mutex
	var events []string
	s := startServer(t, newTestHandler(), WithUserHook(func(u User, connected bool) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("%d %v %s", u.ID, connected, u.Addr))
	}))
	c1 := greeted(t, s, 1, 1)
	c2 := greeted(t, s, 2, 1, 2)
	a1, a2 := c1.nc.LocalAddr().String(), c2.nc.LocalAddr().String()
	c1.nc.Close()
	waitFor(t, "user 1 gone", func() bool { return slices.Equal(userIDs(s), []int{2}) })
	mu.Lock()
	defer mu.Unlock()
	want := []string{"1 true " + a1, "2 true " + a2, "1 false " + a1}
	if !slices.Equal(events, want) {
		t.Errorf("hook heard %q, want %q", events, want)
	}
}
