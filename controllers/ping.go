package controllers

import (
	"context"
	"time"

	"github.com/sdss/fliswarm/pkg/ping"
)

func defaultPing(ctx context.Context, host string, timeout time.Duration, fallbackPort int) error {
	return ping.Host(ctx, host, timeout, fallbackPort)
}
