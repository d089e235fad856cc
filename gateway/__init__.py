"""crm-mail-gateway: brings mail from mailbox folders and a BCC intake into a CRM."""

__version__ = "0.1.0"
