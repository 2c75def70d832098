# web/: the dashboard's static files (docs/web.md), served by the daemon
# (node/api_web.c) and installed to $(pkgdatadir)/web.  Every file of web/
# is listed here, so `make install` and the tarball carry it.
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/login.html web/login.js web/app.js web/style.css \
	web/icon.svg
