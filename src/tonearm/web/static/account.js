// Account (plan, checkout, invitations, devices, invoices), history and stats, profiles.
// (stub: filled in by the account work)
export {};
