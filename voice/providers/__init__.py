"""Speech-to-text, chat and text-to-speech providers behind one small interface each (design notes §4)."""
