"""The BCC intake: an SMTP server (aiosmtpd) taking mail sent to a user's secret address; tags
stay in the ledger."""
