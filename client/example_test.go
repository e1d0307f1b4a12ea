package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/heraldhq/herald/client"
)

// Send an email to a user and wait until Herald has handed it to the
// provider.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client.New(heraldURL, apiKey)

	if _, err := c.PutUser(ctx, "ada", client.PutUserRequest{Email: "ada@example.com"}); err != nil {
		log.Fatal(err)
	}
	acc, err := c.Send(ctx, client.SendRequest{
		To:       []client.Recipient{{UserID: "ada"}},
		Channels: []string{"email"},
		Content:  &client.Content{Subject: "Welcome", Body: "Hello Ada"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accepted:", acc.Status, len(acc.Deliveries), "delivery")

	n, err := c.WaitNotification(ctx, acc.ID, 20*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	d := n.Deliveries[0]
	fmt.Println(n.Status, d.Channel, d.Status, "by", d.Provider)
	// Output:
	// accepted: accepted 1 delivery
	// completed email sent by log
}

// Create or replace a user, then read it back.
func ExampleClient_PutUser() {
	ctx := context.Background()
	c := client.New(heraldURL, apiKey)

	u, err := c.PutUser(ctx, "grace", client.PutUserRequest{
		Email:      "grace@example.com",
		Phone:      "+1 415 555 0100", // stored in E.164
		Timezone:   "America/New_York",
		Attributes: map[string]any{"plan": "pro"},
	})
	if err != nil {
		log.Fatal(err)
	}
	got, err := c.GetUser(ctx, u.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.ID, got.Phone, got.Timezone, got.Attributes["plan"])
	// Output: grace +14155550100 America/New_York pro
}

// A refused input is a *client.Error carrying the RFC 9457 problem, with
// each offending field by its JSON path.
func ExampleError() {
	ctx := context.Background()
	c := client.New(heraldURL, apiKey)

	_, err := c.Send(ctx, client.SendRequest{
		To:      []client.Recipient{{Email: "not an address"}},
		Content: &client.Content{Body: "hi"},
	})
	var herr *client.Error
	if errors.As(err, &herr) {
		fmt.Println(herr.StatusCode, herr.Title)
		for _, f := range herr.Errors {
			fmt.Printf("%s: invalid\n", f.Field)
		}
	}
	fmt.Println(client.IsInvalid(err))
	// Output:
	// 422 Invalid request
	// to[0].email: invalid
	// true
}

// Sending again with the same Idempotency-Key, as a retry does, returns
// the first answer: the notification is sent once.
func ExampleClient_Send_idempotent() {
	ctx := context.Background()
	c := client.New(heraldURL, apiKey)
	req := client.SendRequest{
		To:             []client.Recipient{{Phone: "+14155550123"}},
		Channels:       []string{"sms"},
		Content:        &client.Content{Body: "Your code is 1234"},
		IdempotencyKey: "order-1234-code",
	}
	first, err := c.Send(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.Send(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same notification:", again.ID == first.ID)
	fmt.Println("replayed:", first.Replayed, again.Replayed)
	// Output:
	// same notification: true
	// replayed: false true
}
