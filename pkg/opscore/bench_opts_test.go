package opscore

func benchServerOpts() []Option { return nil }
