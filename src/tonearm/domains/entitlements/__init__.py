"""What each listener's plan lets them do, decided on every play, skip and download."""
