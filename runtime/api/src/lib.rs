//! Types of the external-secrets.io API that esox serves.
