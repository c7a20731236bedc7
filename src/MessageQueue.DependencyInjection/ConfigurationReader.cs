using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MessageQueue.DependencyInjection;

/// <summary>
/// Reads the broker's and the queues' settings from a configuration section. Each key is converted on its own by
/// <see cref="ConfigurationBinder"/>, so that every unknown key and every bad value is reported (a plain
/// <c>Bind</c> ignores unknown keys and stops at the first bad value).
/// </summary>
internal static class ConfigurationReader
{
    private const string QueuesKey = "Queues";
    private const string RulesKey = "AuthorizationRules";
    private static readonly string[] RuleKeys = ["Client", "Operation", "Effect", "Queue", "Event"];

    public static void Read(IServiceProvider services, string sectionPath, MessageBrokerOptions options)
    {
        if (services.GetService<IConfiguration>() is not { } configuration)
        {
            options.ConfigurationErrors.Add(
                $"BindConfiguration(\"{sectionPath}\") needs an IConfiguration in the container. A host registers one; without a host, register it with services.AddSingleton<IConfiguration>(configuration).");
            return;
        }

        foreach (IConfigurationSection entry in configuration.GetSection(sectionPath).GetChildren())
        {
            if (string.Equals(entry.Key, QueuesKey, StringComparison.OrdinalIgnoreCase))
            {
                foreach (IConfigurationSection queue in entry.GetChildren())
                {
                    if (Names.DescribeInvalidName(queue.Key, "Queue name") is { } nameError)
                    {
                        options.ConfigurationErrors.Add($"{queue.Path}: {nameError}");
                        continue;
                    }

                    QueueDeclaration declaration = options.GetOrAddQueue(queue.Key);
                    declaration.OptionsGiven = true;
                    foreach (IConfigurationSection setting in queue.GetChildren())
                    {
                        Set(setting, declaration.Options, "QueueOptions", options.ConfigurationErrors);
                    }
                }

                continue;
            }

            if (string.Equals(entry.Key, RulesKey, StringComparison.OrdinalIgnoreCase))
            {
                foreach (IConfigurationSection rule in entry.GetChildren())
                {
                    if (ReadRule(rule, options.ConfigurationErrors) is { } parsed)
                    {
                        options.Broker.AuthorizationRules.Add(parsed);
                    }
                }

                continue;
            }

            Set(entry, options.Broker, "BrokerOptions", options.ConfigurationErrors, QueuesKey + ", " + RulesKey);
        }
    }

    /// <summary>
    /// One rule: <c>{ "Client": "*", "Operation": "Publish", "Effect": "Allow", "Queue": "results", "Event": "{client}.results" }</c>.
    /// Every problem is reported; the rule's patterns are checked with the broker's options.
    /// </summary>
    private static AuthorizationRule? ReadRule(IConfigurationSection rule, List<string> errors)
    {
        int before = errors.Count;
        foreach (IConfigurationSection key in rule.GetChildren())
        {
            if (!RuleKeys.Contains(key.Key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{key.Path}: an authorization rule has no setting '{key.Key}'. The settings are: {string.Join(", ", RuleKeys)}.");
            }
        }

        string? Required(string key)
        {
            string? value = rule[key];
            if (string.IsNullOrEmpty(value))
            {
                errors.Add($"{rule.Path}: the authorization rule has no {key}.");
            }

            return value;
        }

        string? client = Required("Client");
        string? queue = Required("Queue");
        string? eventPattern = Required("Event");
        string? operationText = Required("Operation");
        string effect = rule["Effect"] ?? "Allow";
        BrokerOperation operation = default;
        if (operationText is not null && !Enum.TryParse(operationText, ignoreCase: true, out operation))
        {
            errors.Add($"{rule.Path}:Operation: '{operationText}' is not an operation; use Publish or Subscribe.");
        }

        bool deny = string.Equals(effect, "Deny", StringComparison.OrdinalIgnoreCase);
        if (!deny && !string.Equals(effect, "Allow", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{rule.Path}:Effect: '{effect}' is not an effect; use Allow or Deny.");
        }

        if (errors.Count > before)
        {
            return null;
        }

        return (operation, deny) switch
        {
            (BrokerOperation.Publish, false) => AuthorizationRule.AllowPublish(client!, queue!, eventPattern!),
            (BrokerOperation.Publish, true) => AuthorizationRule.DenyPublish(client!, queue!, eventPattern!),
            (_, false) => AuthorizationRule.AllowSubscribe(client!, queue!, eventPattern!),
            _ => AuthorizationRule.DenySubscribe(client!, queue!, eventPattern!),
        };
    }

    private static void Set(IConfigurationSection setting, object target, string optionsName, List<string> errors, string? alsoKnown = null)
    {
        PropertyInfo? property = target.GetType().GetProperty(setting.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
        if (property is null || !property.CanWrite || !IsScalar(property.PropertyType))
        {
            string known = string.Join(", ", Settable(target.GetType()).Append(alsoKnown).OfType<string>());
            errors.Add(property is null
                ? $"{setting.Path}: {optionsName} has no setting '{setting.Key}'. The settings are: {known}."
                : $"{setting.Path}: {optionsName}.{property.Name} cannot be set from configuration; set it in code. The settings configuration can hold are: {known}.");
            return;
        }

        if (setting.Value is null)
        {
            errors.Add($"{setting.Path}: {optionsName}.{property.Name} takes a single value, not a section.");
            return;
        }

        try
        {
            property.SetValue(target, setting.Get(property.PropertyType));
        }
        catch (InvalidOperationException)
        {
            errors.Add($"{setting.Path}: '{setting.Value}' is not a valid {Describe(property.PropertyType)}.");
        }
    }

    private static IEnumerable<string> Settable(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && IsScalar(p.PropertyType))
            .Select(p => p.Name);

    private static bool IsScalar(Type type)
    {
        Type underlying = Nullable.GetUnderlyingType(type) ?? type;
        return underlying.IsPrimitive || underlying.IsEnum || underlying == typeof(string) || underlying == typeof(TimeSpan);
    }

    private static string Describe(Type type)
    {
        Type underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying.IsEnum)
        {
            return $"{underlying.Name}; use one of {string.Join(", ", Enum.GetNames(underlying))}";
        }

        if (underlying == typeof(TimeSpan))
        {
            return "time span; use [d.]hh:mm:ss[.fff], for example \"00:00:30\" for 30 seconds";
        }

        if (underlying == typeof(bool))
        {
            return "boolean; use true or false";
        }

        return underlying == typeof(int) || underlying == typeof(long) ? "whole number" : "number";
    }
}
