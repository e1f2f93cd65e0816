// Package opscore implements the SDSS opscore ("legacy") actor line
// protocol, the one the tron hub speaks: parsing command lines, encoding
// keyword replies, and a TCP server that assigns user ids, greets users,
// routes replies to the connection that sent a command and broadcasts to
// all. It knows nothing about cameras or Docker; commands are handed to a
// Handler.
package opscore
