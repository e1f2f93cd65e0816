package opscore

import "sort"

// User is a connected user.
type User struct {
	// ID is the user id, the smallest free integer from 1 at connection.
	ID int
	// Addr is the remote address, host:port.
	Addr string
}

// Users returns the connected users, by id.
func (s *Server) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.users))
	for _, c := range s.users {
		out = append(out, User{ID: c.id, Addr: c.addr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// register gives c the smallest free user id and greets it.
func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := 1
	for s.users[id] != nil {
		id++
	}
	c.id = id
	s.users[id] = c
	s.observer.UsersChanged(len(s.users))
	if s.userHook != nil {
		s.userHook(User{ID: id, Addr: c.addr}, true)
	}

	c.reply(id, 0, Info, KW("yourUserID", id), KW("num_users", len(s.users)))
	ids := make([]int, 0, len(s.users))
	for uid := range s.users {
		ids = append(ids, uid)
	}
	sort.Ints(ids)
	for _, uid := range ids {
		line := AppendReply(nil, 0, 0, Info, KW("UserInfo", uid, s.users[uid].host))
		line = append(line, '\n')
		for _, u := range s.users {
			u.queue(line)
		}
	}
	c.reply(id, 0, Info, KW("version", Quoted(s.version)))
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[c.id] == c {
		delete(s.users, c.id)
		s.observer.UsersChanged(len(s.users))
		if s.userHook != nil {
			s.userHook(User{ID: c.id, Addr: c.addr}, false)
		}
	}
}

// Broadcast sends an unsolicited reply (uid 0, cmdId 0) to every user. It
// never blocks on a slow user.
func (s *Server) Broadcast(code Code, kws ...Keyword) {
	b := getScratch()
	*b = append(AppendReply(*b, 0, 0, code, kws...), '\n')
	s.broadcastLine(*b)
	putScratch(b)
}

// WriteUser sends a reply to one user, tagged with uid and cmdID, and
// reports whether that user is connected. Prefer the Command's methods for
// replies to a command: they stay with the connection that sent it.
func (s *Server) WriteUser(uid, cmdID int, code Code, kws ...Keyword) bool {
	s.mu.RLock()
	c := s.users[uid]
	s.mu.RUnlock()
	if c == nil {
		return false
	}
	c.reply(uid, cmdID, code, kws...)
	return true
}

// broadcastLine queues a line (newline included) to every user.
func (s *Server) broadcastLine(line []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.users {
		c.queue(line)
	}
}
