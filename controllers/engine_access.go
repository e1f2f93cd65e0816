package controllers

import "fmt"

// NodeEngine returns the engine connection the controller holds for a
// configured node (opening it when none is open), for readers that only
// look (the daemon's logs). It never changes anything on the node.
func (c *NodeController) NodeEngine(node string) (Engine, error) {
	spec, _ := c.store.Spec()
	if _, ok := spec.Nodes[node]; !ok {
		return nil, fmt.Errorf("%s is not configured", node)
	}
	return c.engines.Get(node, spec.EngineConnection(node))
}
