"""The web app: server-rendered pages, their templates and the built front-end assets."""
