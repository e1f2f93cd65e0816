// Package clu holds the wire format of CLU's JSON actor protocol, the one
// every flicamera instance speaks on its TCP port: command lines going out
// ("<command_id> <command string>\n") and one JSON reply object per line
// coming back. It decodes reply data keeping the order of object keys,
// because fliswarm flattens objects into opscore keyword values in order.
//
// It is pure encoding: it opens no connection and keeps no state.
package clu
