package pgstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/store"
)

// Groups finds the groups of the journal and the dead letters, and
// DeleteNamespace drops the schema.
func TestDeleteNamespace(t *testing.T) {
	st, url, schema := openSchema(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := st.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "o-1", Outcome: store.Handled, EventID: "e-1", EventType: "order.placed.v1", Group: "payment"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDead(ctx, store.DeadLetter{Group: "audit", Type: "order.placed.v1", Body: []byte(`{}`), Reason: "test", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := pgstore.Config{URL: url, Schema: schema}
	groups, err := pgstore.Groups(ctx, cfg)
	if err != nil || !slices.Equal(groups, []string{"audit", "payment"}) {
		t.Fatalf("groups %v, %v; want [audit payment]", groups, err)
	}

	if deleted, err := pgstore.DeleteNamespace(ctx, cfg); err != nil || !deleted {
		t.Fatalf("delete: %v, %v; want the schema dropped", deleted, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s after the delete: %d, %v; want none", schema, n, err)
	}
	if deleted, err := pgstore.DeleteNamespace(ctx, cfg); err != nil || deleted {
		t.Errorf("second delete: %v, %v; want nothing dropped", deleted, err)
	}
	if groups, err := pgstore.Groups(ctx, cfg); err != nil || len(groups) != 0 {
		t.Errorf("groups of a schema that is gone: %v, %v; want none", groups, err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("Groups created schema %s", schema)
	}
}
