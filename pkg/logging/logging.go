package logging

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options say where logs go.
type Options struct {
	// Console writes human-readable lines to stderr (fliswarm start --debug).
	Console bool
	// Verbose lowers the level to debug (V(1)).
	Verbose bool
	// File receives JSON lines; empty means no file.
	File string
	// JSON writes JSON lines to stderr (a foreground daemon without a
	// log file, e.g. under systemd).
	JSON bool
}

// New returns a logger and a function that flushes and closes it.
func New(o Options) (logr.Logger, func(), error) {
	level := zapcore.InfoLevel
	if o.Verbose {
		level = zapcore.DebugLevel
	}
	var cores []zapcore.Core
	if o.Console {
		enc := zap.NewDevelopmentEncoderConfig()
		enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		cores = append(cores, zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), level))
	}
	if o.JSON {
		enc := zap.NewProductionEncoderConfig()
		enc.EncodeTime = zapcore.ISO8601TimeEncoder
		enc.TimeKey = "time"
		cores = append(cores, zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(os.Stderr), level))
	}
	var file *os.File
	if o.File != "" {
		if err := os.MkdirAll(filepath.Dir(o.File), 0o755); err != nil {
			return logr.Discard(), func() {}, fmt.Errorf("log directory: %w", err)
		}
		f, err := os.OpenFile(o.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return logr.Discard(), func() {}, fmt.Errorf("log file: %w", err)
		}
		file = f
		enc := zap.NewProductionEncoderConfig()
		enc.EncodeTime = zapcore.ISO8601TimeEncoder
		enc.TimeKey = "time"
		cores = append(cores, zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(f), level))
	}
	if len(cores) == 0 {
		return logr.Discard(), func() {}, nil
	}
	z := zap.New(zapcore.NewTee(cores...))
	return zapr.NewLogger(z), func() {
		_ = z.Sync()
		if file != nil {
			_ = file.Close()
		}
	}, nil
}

// FileIn returns the log file path fliswarm uses in dir.
func FileIn(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "fliswarm.log")
}
