package pgstore

// SeenQuery is the statement that answers a batch of Seens.
func SeenQuery(s *Store) string { return s.q.seenMany }
