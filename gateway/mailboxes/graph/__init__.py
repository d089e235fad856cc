"""Exchange Online through Microsoft Graph: delta queries per folder, tags written back as
categories."""
