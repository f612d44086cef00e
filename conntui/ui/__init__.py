"""The Textual dashboard: thin widgets that render the pure view in `conntui.view`."""
