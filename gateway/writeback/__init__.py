"""Write-back: tag or move the source message after the CRM work is committed."""
