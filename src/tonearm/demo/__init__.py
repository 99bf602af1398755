"""The demo catalog: invented artists and albums with real, synthesized, listenable music."""
