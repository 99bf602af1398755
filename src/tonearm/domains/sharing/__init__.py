"""Sharing: public pages, embeds, oEmbed, URI resolution and short share links."""
