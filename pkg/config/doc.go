// Package config reads fliswarm configuration files in both layouts users
// already have (flat, and keyed by observatory) into the desired-state
// spec of api/v1, applying defaults and command-line overrides and
// reporting every problem at once, each with its path in the file.
//
// It only reads: it never writes a file and never talks to a node.
package config
