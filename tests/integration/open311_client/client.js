// client.js — drives fenbo's Open311 endpoint with the third-party client
// library (npm open311, Code for America), the way an app uses it:
// discovery, the service list, a POST, the token, and paging through the
// requests. Its two XML helpers are replaced by a stub package
// (package.json "overrides"): one is a git dependency npm cannot fetch, the
// other needs a native build; the JSON paths used here never call them.
// Prints one JSON object with what it saw; exits non-zero on an error.
//
//   node client.js BASE API_KEY post         discovery, services, POST, token
//   node client.js BASE API_KEY page SIZE    discovery, then every page
'use strict';
const Open311 = require('open311');

const [base, apiKey, mode, pageSize] = process.argv.slice(2);
const client = new Open311({discovery: base + '/open311/v2/discovery.json', apiKey: apiKey});
const out = {};

function fail(what, err, body) {
  console.error(what + ': ' + JSON.stringify(err) + ' ' + String(body).slice(0, 500));
  process.exit(1);
}

client.serviceDiscovery({cache: true, specification: 'http://wiki.open311.org/GeoReport_v2',
                         type: 'production', index: 0}, (err, disc) => {
  if (err) fail('discovery', err, disc);
  out.endpoint = client.endpoint;
  if (mode === 'page') return pageAll();
  client.serviceList((err, services) => {
    if (err) fail('services', err, services);
    out.services = services.length;
    client.submitRequest({service_code: '030102', lat: 30.215, long: 120.125,
                          description: '路灯坏了好几天了', device_id: 'open311-js'},
                         (err, posted) => {
      if (err) fail('submit', err, posted);
      out.posted = posted[0];
      // fenbo answers with the service_request_id at once; a token, when a
      // server gives one instead, is looked up the same way.
      client.token(posted[0].token || posted[0].service_request_id, (err, tok) => {
        if (err) fail('token', err, tok);
        out.token = tok;
        console.log(JSON.stringify(out));
      });
    });
  });
});

function pageAll() {
  const pages = [];
  const next = (page) => {
    client.serviceRequests({page_size: pageSize, page: page}, (err, rows) => {
      if (err) fail('requests page ' + page, err, rows);
      pages.push(rows.map((r) => r.service_request_id));
      if (rows.length > 0 && page < 50) return next(page + 1);
      out.pages = pages;
      console.log(JSON.stringify(out));
    });
  };
  next(1);
}
