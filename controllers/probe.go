package controllers

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/ping"
)

func defaultPing(ctx context.Context, host string, timeout time.Duration, fallbackPort int) error {
	return ping.Host(ctx, host, timeout, fallbackPort)
}

// cameraProbeTimeout bounds one readiness probe of a camera.
const cameraProbeTimeout = 2 * time.Second

// probeCamera is the readiness check of a new camera: its port accepts a
// connection and the actor there, named node, answers `ping` with a
// finished reply. Another actor answering on the port does not count.
func probeCamera(ctx context.Context, node, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, cameraProbeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	const id = 1
	if _, err := conn.Write(clu.FormatCommand(id, "ping")); err != nil {
		return err
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		r, err := clu.ParseReply(sc.Bytes())
		if err != nil || r.Header.CommandID != id || !clu.IsTerminal(r.Header.MessageCode) {
			continue
		}
		if r.Header.Sender != node {
			return fmt.Errorf("the actor on %s is %q, not the camera of %s", addr, r.Header.Sender, node)
		}
		if r.Header.MessageCode != clu.CodeDone {
			return fmt.Errorf("the camera on %s failed ping (%s)", addr, r.Header.MessageCode)
		}
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("no answer to ping on %s: %w", addr, err)
	}
	return fmt.Errorf("the camera on %s closed the connection without answering ping", addr)
}
