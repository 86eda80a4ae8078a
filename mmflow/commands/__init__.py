"""One module per `mmflow` sub-command."""
