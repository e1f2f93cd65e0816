// Command flicamera-sim is a simulated flicamera camera actor: a CLU JSON
// protocol server on TCP that answers like a real camera container and
// writes real FITS images. It is the image the test bed runs on its nodes
// in place of flicamera. See package camsim for its behaviour.
//
// Every flag defaults to an environment variable, so a container can be
// configured the way fliswarm configures the real one (ACTOR_NAME,
// OBSERVATORY).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sdss/fliswarm/test/camsim"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// badEnv collects environment values the simulator cannot use; like a
// real camera actor with a broken setting, it then exits at start.
var badEnv []string

func envFloat(key string, def float64) float64 {
	s := env(key, "")
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		badEnv = append(badEnv, fmt.Sprintf("%s=%q is not a number", key, s))
		return def
	}
	return v
}

func run(args []string) int {
	fs := flag.NewFlagSet("flicamera-sim", flag.ContinueOnError)
	var (
		host     = fs.String("host", env("FLICAMERA_HOST", "0.0.0.0"), "address to listen on (env FLICAMERA_HOST)")
		port     = fs.Int("port", int(envFloat("FLICAMERA_PORT", 19995)), "TCP port (env FLICAMERA_PORT)")
		name     = fs.String("name", env("ACTOR_NAME", "flicamera"), "actor name (env ACTOR_NAME)")
		obs      = fs.String("observatory", env("OBSERVATORY", "APO"), "APO or LCO (env OBSERVATORY)")
		dataDir  = fs.String("data-dir", env("FLICAMERA_DATA_DIR", "/data"), "image root directory (env FLICAMERA_DATA_DIR)")
		interval = fs.Float64("status-interval", envFloat("FLICAMERA_STATUS_INTERVAL", 0), "seconds between status broadcasts, 0 = off (env FLICAMERA_STATUS_INTERVAL)")
		scale    = fs.Float64("exposure-scale", envFloat("FLICAMERA_EXPOSURE_SCALE", 1), "factor on exposure wait times (env FLICAMERA_EXPOSURE_SCALE)")
		readout  = fs.Duration("readout", 200*time.Millisecond, "readout time")
		width    = fs.Int("width", 2048, "unbinned image width")
		height   = fs.Int("height", 2048, "unbinned image height")
		verbose  = fs.Bool("v", false, "debug logging")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(badEnv) > 0 {
		fmt.Fprintf(os.Stderr, "flicamera-sim: cannot start: %s\n", strings.Join(badEnv, "; "))
		return 2
	}
	if *obs != "APO" && *obs != "LCO" {
		fmt.Fprintf(os.Stderr, "flicamera-sim: observatory must be APO or LCO, not %q\n", *obs)
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		// Not fatal: the real actor also runs without its data volume;
		// exposures then fail with the error.
		log.Warn("cannot create data directory", "dir", *dataDir, "err", err)
	}

	srv := camsim.New(camsim.Config{
		Name:           *name,
		Observatory:    *obs,
		DataDir:        *dataDir,
		StatusInterval: time.Duration(*interval * float64(time.Second)),
		ExposureScale:  *scale,
		Readout:        *readout,
		Width:          *width,
		Height:         *height,
		Logger:         log,
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := srv.ListenAndServe(ctx, net.JoinHostPort(*host, strconv.Itoa(*port)))
	var exit *camsim.ExitError
	switch {
	case errors.As(err, &exit):
		log.Info("exiting on request", "code", exit.Code)
		return exit.Code
	case err != nil:
		log.Error("server failed", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
