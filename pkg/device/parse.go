package device

import "github.com/sdss/fliswarm/pkg/clu"

// parseReply decodes one camera reply line.
func parseReply(line []byte) (clu.Reply, error) { return clu.ParseReply(line) }
