package camsim

import (
	"encoding/json"
	"strconv"

	"github.com/sdss/fliswarm/pkg/clu"
)

// MarshalReply encodes a reply as one line, without the trailing newline,
// as flicamera writes it: the header's fields in order, nil data as {},
// values as clu.Object's MarshalJSON writes them (the non-finite floats as
// Python's NaN, Infinity and -Infinity).
func MarshalReply(r clu.Reply) ([]byte, error) {
	data := r.Data
	if data == nil {
		data = clu.Object{}
	}
	h := r.Header
	return clu.Object{
		{Key: "header", Value: clu.Object{
			{Key: "command_id", Value: json.Number(strconv.Itoa(h.CommandID))},
			{Key: "commander_id", Value: h.CommanderID},
			{Key: "message_code", Value: h.MessageCode},
			{Key: "internal", Value: h.Internal},
			{Key: "sender", Value: h.Sender},
		}},
		{Key: "data", Value: data},
	}.MarshalJSON()
}
