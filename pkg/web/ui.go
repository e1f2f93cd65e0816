package web

import (
	"embed"
	"io/fs"
)

// ui holds the status page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed ui
var ui embed.FS

// indexHTML is the page served at /.
var indexHTML = func() []byte {
	b, err := ui.ReadFile("ui/index.html")
	if err != nil {
		panic(err)
	}
	return b
}()

// staticFS serves the page's stylesheet and script at /static/.
func staticFS() fs.FS {
	sub, err := fs.Sub(ui, "ui")
	if err != nil {
		panic(err)
	}
	return sub
}
