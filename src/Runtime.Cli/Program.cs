using Runtime.Cli;

return CommandLine.Run(args);
