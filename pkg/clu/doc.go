// Package clu holds the wire format of CLU's JSON actor protocol, the one
// every flicamera instance speaks on its TCP port: command lines going out
// ("<command_id> <command string>\n") and one JSON reply object per line
// coming back. It decodes reply data keeping the order of object keys,
// because fliswarm flattens objects into opscore keyword values in order.
//
// The camera actors are Python programs, and Python's json module writes
// the non-finite floats as the bare words NaN, Infinity and -Infinity;
// ParseReply accepts them wherever a value may be and decodes them to
// float64 (finite numbers stay json.Number, as written), and Object's
// MarshalJSON writes them back the same way. A line that cannot be decoded
// yields a *DecodeError holding the raw line, so that it can be relayed.
//
// Files: wire.go (the types and command lines), decode.go (a reply line:
// its header and data), values.go (JSON values inside it), encode.go
// (Object as JSON). Writing whole reply lines, as a camera does, is the
// simulator's (test/camsim.MarshalReply), not the product's.
//
// It is pure encoding: it opens no connection and keeps no state, and
// imports only pkg/internal.
package clu
