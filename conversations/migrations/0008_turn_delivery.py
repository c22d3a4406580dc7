"""What became of each assistant reply (complete, interrupted, unheard, speech_failed, reply_failed).

Replies stored before this knew only ``interrupted``: an interrupted one with nothing heard was unheard."""

from django.db import migrations, models


def _existing_replies(apps, schema_editor) -> None:
    Turn = apps.get_model("conversations", "Turn")
    replies = Turn.objects.filter(role="assistant")
    replies.filter(interrupted=False).update(delivery="complete")
    replies.filter(interrupted=True).exclude(heard_text="").update(delivery="interrupted")
    replies.filter(interrupted=True, heard_text="").update(delivery="unheard")


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0007_phone_calls"),
    ]

    operations = [
        migrations.AddField(
            model_name="turn",
            name="delivery",
            field=models.CharField(
                blank=True,
                choices=[
                    ("complete", "Complete"),
                    ("interrupted", "Interrupted"),
                    ("unheard", "Unheard"),
                    ("speech_failed", "Speech failed"),
                    ("reply_failed", "Reply failed"),
                ],
                db_index=True,
                help_text="For the assistant: complete, interrupted (heard_text is what was heard), unheard, "
                "speech_failed (sent as text only) or reply_failed (the language model failed).",
                max_length=16,
            ),
        ),
        migrations.RunPython(_existing_replies, migrations.RunPython.noop, elidable=True),
    ]
