package actor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// KeywordDef is one keyword fliswarm writes itself: the keyword
// dictionary tron decodes fliswarm with (../shared/protocols.md), plus
// fliswarm's own additions. It is the one table behind get_schema, keyword
// and the dictionary test.
type KeywordDef struct {
	Name string
	// Values are the JSON schema types of the values, in order ("string",
	// "integer", "number", "boolean"; "" for any).
	Values []string
	// Rest is the type of any number of further values; "" for none, "any"
	// for values of any type.
	Rest string
	// Min is the fewest values the keyword has.
	Min         int
	Description string
}

// Max is the most values the keyword has, -1 for any number.
func (k KeywordDef) Max() int {
	if k.Rest != "" {
		return -1
	}
	return len(k.Values)
}

// Keywords is fliswarm's keyword table, in the dictionary's order. A
// camera's keywords, relayed with the node's name first, keep the camera's
// own shape and are not in it (but status, exposure_state and filename,
// which tron's dictionary names, are).
var Keywords = []KeywordDef{
	{Name: "yourUserID", Values: []string{"integer"}, Min: 1, Description: "The user id of the connection."},
	{Name: "num_users", Values: []string{"integer"}, Min: 1, Description: "The number of users connected."},
	{Name: "UserInfo", Values: []string{"integer", "string"}, Min: 2, Description: "A connected user: id, peer address."},
	{Name: "version", Values: []string{"string"}, Min: 1, Description: "The version of fliswarm."},
	{Name: "text", Values: []string{"string"}, Rest: "string", Min: 1, Description: "Free text."},
	{Name: "error", Values: []string{"string", "string"}, Min: 2, Description: "A failure: the node (or the actor's name when no node), the message."},
	{Name: "enabledNodes", Rest: "string", Description: "The nodes enabled."},
	{Name: "node", Values: []string{"string", "string", "string", "boolean", "boolean"}, Min: 5,
		Description: "A node: name, host, Docker daemon address, node pinging, Docker answering."},
	{Name: "container", Values: []string{"string", "string"}, Min: 2, Description: "A node's camera container: node, short id (NA when none)."},
	{Name: "volume", Values: []string{"string", "string", "boolean", "string"}, Min: 4,
		Description: "A node's volume: node, volume, exists, device path (NA when missing)."},
	{Name: "status", Values: []string{"string"}, Rest: "any", Min: 2, Description: "A camera's status: node, then the camera's status values."},
	{Name: "exposure_state", Values: []string{"string"}, Rest: "any", Min: 2, Description: "A camera's exposure state: node, then the camera's values."},
	{Name: "filename", Values: []string{"string", "string", "string"}, Min: 3, Description: "An image written: node, camera, file path."},
	{Name: "filename_bundle", Values: []string{"string"}, Rest: "string", Min: 1, Description: "The files one talk command wrote, across all cameras."},
	{Name: "help", Values: []string{"string"}, Min: 1, Description: "One line of help text (a camera's, relayed: node, line)."},
	{Name: "hub", Values: []string{"boolean", "string", "boolean", "string"}, Min: 4,
		Description: "The tron hub: fliswarm connected to it, its address (NA when none), tron connected to the actor port, when tron last connected (UTC, NA when never)."},
	{Name: "schema", Values: []string{"string"}, Min: 1, Description: "The actor's keywords as a JSON schema, as a JSON string."},
}

// lookupKeyword returns the definition of the keyword called name.
func lookupKeyword(name string) (KeywordDef, bool) {
	for _, k := range Keywords {
		if k.Name == name {
			return k, true
		}
	}
	return KeywordDef{}, false
}

func typeSchema(t string) map[string]any {
	if t == "" || t == "any" {
		return map[string]any{}
	}
	return map[string]any{"type": t}
}

// keywordSchema is the JSON schema of one keyword's value: the value's
// type for a keyword of exactly one value, else an array (draft 7, the
// items in order, as CLU's own schemas write UserInfo).
func keywordSchema(k KeywordDef) map[string]any {
	if k.Rest == "" && len(k.Values) == 1 && k.Min == 1 {
		s := typeSchema(k.Values[0])
		s["description"] = k.Description
		return s
	}
	s := map[string]any{"type": "array", "description": k.Description, "minItems": k.Min}
	if len(k.Values) > 0 {
		items := make([]any, len(k.Values))
		for i, t := range k.Values {
			items[i] = typeSchema(t)
		}
		s["items"] = items
		if k.Rest == "" {
			s["maxItems"] = len(k.Values)
		} else {
			s["additionalItems"] = typeSchema(k.Rest)
		}
	} else {
		s["items"] = typeSchema(k.Rest)
	}
	return s
}

// Schema returns fliswarm's keywords as a JSON schema, as CLU's models
// are written: an object whose properties are the keywords.
func Schema() map[string]any {
	props := map[string]any{}
	for _, k := range Keywords {
		props[k.Name] = keywordSchema(k)
	}
	return map[string]any{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"type":                 "object",
		"properties":           props,
		"additionalProperties": true, // relayed camera keywords
	}
}

// getSchema finishes with schema="<the schema as JSON>", as CLU's
// get_schema does.
func (a *Actor) getSchema(_ context.Context, cmd *opscore.Command) {
	if _, ok := a.parseNoArgs(cmd); !ok {
		return
	}
	b, err := json.Marshal(Schema())
	if err != nil {
		a.fail(cmd, "Cannot encode the schema: %v.", err)
		return
	}
	cmd.Finish(opscore.KW("schema", string(b)))
}

// keyword prints a keyword's schema as CLU's keyword command does: the
// schema indented, without quotes, one text= line each, padded to one
// width, after a `<name> = {` line.
func (a *Actor) keyword(_ context.Context, cmd *opscore.Command) {
	fs, ok := a.parse(cmd)
	if !ok {
		return
	}
	if fs.NArg() != 1 {
		a.usageError(cmd, "keyword: give exactly one KEYWORD.")
		return
	}
	k, ok := lookupKeyword(fs.Arg(0))
	if !ok {
		a.fail(cmd, "Keyword '%s' is not part of the data model.", fs.Arg(0))
		return
	}
	b, err := json.MarshalIndent(keywordSchema(k), "", "  ")
	if err != nil {
		a.fail(cmd, "Cannot encode the schema: %v.", err)
		return
	}
	lines := strings.Split(string(b), "\n")[1:]
	width := 0
	for _, l := range lines {
		width = max(width, len(l))
	}
	cmd.Write(opscore.Info, opscore.KW("text", opscore.Quoted(fmt.Sprintf("%-*s", width, k.Name+" = {"))))
	for _, l := range lines {
		cmd.Write(opscore.Info, opscore.KW("text", opscore.Quoted(fmt.Sprintf("%-*s", width, strings.ReplaceAll(l, `"`, "")))))
	}
	cmd.Finish()
}
