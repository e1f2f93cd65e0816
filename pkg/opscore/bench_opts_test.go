package opscore

func benchServerOpts() []Option { return []Option{WithQueueLength(1 << 22)} }
