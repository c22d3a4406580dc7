"""Work that spans apps, one function each, named by what it does. They sit above every app (the
composition root), so no app reaches them: management commands, admin pages, API views and tasks
that need one are wired here or in the root, or are handed the function.

- ``organizations.open_organization``: schema, domain, first admin, default assistant, widget key, subscription.
- ``visitors.forget_visitor``: profile, the conversation marked, recordings, phone calls' numbers and details
  (the voice tool and the API reach it through ``conversations.visitors.forget_visitor_everywhere``,
  connected in ``aura.wiring``).
- ``retention.apply_retention``: every organization's conversations and phone calls past its retention period.
- ``encryption.rotate_encryption_keys``: every sealed secret re-sealed with the newest key.
"""
