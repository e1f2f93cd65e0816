// Package events is the daemon's record of what happened to each node
// (fliswarm events, the status page's cards, /events, the metrics'
// fliswarm_events_total): a bounded ring of v1.Event per node, and one
// for fliswarm as a whole, in memory only, with followers that receive
// each event as it is recorded.
//
// The parts that act or observe (the controller, the status store, the
// configuration watch) call Recorder.Event; readers call List, or Follow
// to get the past and what comes next without a gap between them.
package events
