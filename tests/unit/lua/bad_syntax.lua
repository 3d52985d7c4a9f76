local app = {}
function app.on_message(conn, data
  conn:send(data)
end
return app
