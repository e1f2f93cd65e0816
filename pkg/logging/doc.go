// Package logging builds fliswarm's logr.Logger on zap: structured JSON
// lines to a log file, and readable console lines on stderr in debug mode.
// It owns no global state beyond what the caller keeps.
package logging
