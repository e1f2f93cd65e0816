package controllers

import v1 "github.com/sdss/fliswarm/api/v1"

// The action types, as api/v1 names them.
const (
	ActionPullImage         = v1.ActionPullImage
	ActionRemoveContainer   = v1.ActionRemoveContainer
	ActionRemoveVolume      = v1.ActionRemoveVolume
	ActionCreateVolume      = v1.ActionCreateVolume
	ActionCreateContainer   = v1.ActionCreateContainer
	ActionRecreateContainer = v1.ActionRecreateContainer
	ActionStartContainer    = v1.ActionStartContainer
	ActionUnpauseContainer  = v1.ActionUnpauseContainer
	ActionRecordHalt        = v1.ActionRecordHalt
	ActionRestorePrevious   = v1.ActionRestorePrevious
)
