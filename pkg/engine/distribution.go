package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/client"
)

// RegistryDigest asks the engine which manifest ref (a name:tag) names at
// its registry now, and returns its digest ("sha256:…"): the digest of
// the manifest list or OCI index when the tag names one, as a pull of ref
// records it. The engine asks the registry with its own settings (its
// insecure-registries, mirrors and certificates, the ones its pulls use)
// and the client's registry credentials. It changes nothing on the node.
// A registry that does not answer or refuses gives an error; a tag it
// does not know satisfies IsNotFound.
func (c *Client) RegistryDigest(ctx context.Context, ref string) (string, error) {
	var digest string
	op := "registry digest of " + ref
	err := c.do(ctx, c.timeout, op, func(ctx context.Context) error {
		var auth string
		if c.auth != nil {
			var err error
			if auth, err = c.auth(); err != nil {
				return err
			}
		}
		res, err := c.api.DistributionInspect(ctx, ref, client.DistributionInspectOptions{EncodedRegistryAuth: auth})
		if err != nil {
			return err
		}
		digest = res.Descriptor.Digest.String()
		if !strings.HasPrefix(digest, "sha256:") {
			return fmt.Errorf("the engine gave no sha256 digest (%q)", digest)
		}
		return nil
	})
	return digest, err
}
