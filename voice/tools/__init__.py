"""What an assistant can do during a turn: built-in tools and the tenant's HTTP tools (see base.ToolBox)."""
