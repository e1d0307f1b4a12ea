// Package herald holds the domain of Herald, a self-hostable multi-channel
// notification system: apps and their keys, users with their contacts,
// devices and preferences, notifications and their per-channel deliveries,
// the events that track them, and the contracts of the store and of the
// delivery providers. It imports the standard library only; every adapter
// and role under internal/ points inward to it.
package herald
