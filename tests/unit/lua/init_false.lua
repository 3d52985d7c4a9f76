return { application_initialize = function() return false end }
