package actor

import (
	"context"
	"net"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// follow runs `status` as a broadcast once at start and then every
// spec.StatusInterval (neither when it is negative), as the original's
// timed command does (CLU runs a timed command at once): its `>`, its
// lines and its `:` all go to every user with uid 0 and cmdId 0. A change
// of the spec restarts the wait with the interval in force, and looks the
// hub's host up again so that tron's connection to the actor port is
// logged as such (see hub.go). It returns when ctx ends.
func (a *Actor) follow(ctx context.Context) {
	var changes <-chan string
	if a.opts.Subscribe != nil {
		ch, unsubscribe := a.opts.Subscribe()
		defer unsubscribe()
		changes = ch
	}
	var resolving sync.WaitGroup
	defer resolving.Wait()
	hubHost := ""
	lookUpHub := func() {
		host, _, err := net.SplitHostPort(a.hubAddress(a.currentSpec()))
		if err != nil || host == hubHost {
			return
		}
		hubHost = host
		resolving.Go(func() { a.peers.resolve(ctx, host) })
	}
	lookUpHub()

	interval := a.currentSpec().StatusInterval.D()
	if interval >= 0 { // negative: no status broadcast at all
		a.broadcastStatus(ctx)
	}
	for {
		d := interval
		if d == 0 {
			d = v1.DefaultStatusInterval.D()
		}
		var tick <-chan time.Time
		t := time.NewTimer(d)
		if d > 0 {
			tick = t.C
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-changes:
				lookUpHub()
				if now := a.currentSpec().StatusInterval.D(); now != interval {
					interval = now
					break wait
				}
			case <-tick:
				a.broadcastStatus(ctx)
				interval = a.currentSpec().StatusInterval.D()
				break wait
			}
		}
		t.Stop()
	}
}

// broadcastStatus runs `status` with its replies broadcast.
func (a *Actor) broadcastStatus(ctx context.Context) {
	if srv := a.srv.Load(); srv != nil {
		if err := srv.RunBroadcast(ctx, "status"); err != nil && ctx.Err() == nil {
			a.log.Error(err, "periodic status failed")
		}
	}
}
