// Package camsim is a simulated flicamera camera actor, the test fixture
// that stands in for a real camera container. It speaks CLU's JSON
// protocol as a TCP server exactly as the flicamera actor does: command
// lines "<id> <command>" in, one JSON reply per line out, a ">" first and
// one ":" or "f" last for every command, broadcasts with command id 0.
//
// One Server simulates one camera. Its name is the actor name plus the
// observatory suffix ("n" at APO, "s" at LCO), e.g. gfa1n; an actor whose
// name starts with "fvc" drives the camera fvc1n (fvc1s). Exposures wait
// EXPTIME times the exposure scale and write a real FITS image under
// <data dir>/gcam/<MJD>/gimg-<camera>-<NNNN>.fits (fcam/fimg for the fvc).
// Only one exposure runs at a time, as on the hardware; a second one fails.
//
// MarshalReply writes a reply line as flicamera does; tests that stand in
// for a camera use it too.
//
// Besides the camera's commands it has test knobs: sim-exit CODE (Serve
// returns an *ExitError after the reply), sim-flood N and sim-hang.
//
// It must not touch anything outside its data directory and its listener,
// and nothing a client sends may crash it or stall the other clients.
package camsim
