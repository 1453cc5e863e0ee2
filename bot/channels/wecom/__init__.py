"""The WeCom (企业微信) channel: callback crypto, the API client and, on top of
them, the adapter that turns WeCom's events into Inbound and delivers Outbound."""
