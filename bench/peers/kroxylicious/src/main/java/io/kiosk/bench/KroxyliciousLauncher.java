package io.kiosk.bench;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import io.kroxylicious.proxy.KafkaProxy;
import io.kroxylicious.proxy.config.ConfigParser;
import io.kroxylicious.proxy.config.Configuration;
import io.kroxylicious.proxy.config.PluginFactory;
import io.kroxylicious.proxy.config.PluginFactoryRegistry;
import io.kroxylicious.proxy.internal.config.Features;
import io.kroxylicious.proxy.service.ClusterNetworkAddressConfigProvider;
import io.kroxylicious.proxy.service.ClusterNetworkAddressConfigProviderService;
import io.kroxylicious.proxy.service.HostPort;

/**
 * Runs Kroxylicious 0.12.0 with the configuration file given as the only argument, as its
 * own app (kroxylicious-app, not on Maven Central) does:
 * {@code new KafkaProxy(registry, parser.parseConfiguration(yaml), features).startup().block()}.
 *
 * <p>One difference: every virtual cluster listens on 127.0.0.1 only. Kroxylicious 0.12.0's
 * port-per-node providers bind every interface (they leave {@code getBindAddress()} empty, and
 * {@code gateways} give no bind address for them), so the registry hands the proxy each
 * provider wrapped with a loopback bind address. That needs the virtual cluster's
 * {@code clusterNetworkAddressConfigProvider} form of the configuration (deprecated since
 * 0.11.0 but read by 0.12.0), the only form built through the registry.
 */
public final class KroxyliciousLauncher {

    private static final String LOOPBACK = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            throw new IllegalArgumentException("usage: KroxyliciousLauncher <config.yaml>");
        }
        ConfigParser parser = new ConfigParser();
        Configuration config;
        try (InputStream yaml = Files.newInputStream(Path.of(args[0]))) {
            config = parser.parseConfiguration(yaml);
        }
        try (KafkaProxy proxy = new KafkaProxy(loopbackOnly(parser), config, Features.defaultFeatures())) {
            proxy.startup();
            proxy.block();
        }
    }

    /** The parser's plugins, with every network address provider bound to loopback. */
    private static PluginFactoryRegistry loopbackOnly(PluginFactoryRegistry plugins) {
        return new PluginFactoryRegistry() {
            @Override
            @SuppressWarnings("unchecked")
            public <P> PluginFactory<P> pluginFactory(Class<P> pluginClass) {
                PluginFactory<P> factory = plugins.pluginFactory(pluginClass);
                if (pluginClass != ClusterNetworkAddressConfigProviderService.class) {
                    return factory;
                }
                return new PluginFactory<P>() {
                    @Override
                    public P pluginInstance(String name) {
                        var service = (ClusterNetworkAddressConfigProviderService<Object>) factory.pluginInstance(name);
                        ClusterNetworkAddressConfigProviderService<Object> bound = config -> new OnLoopback(service.build(config));
                        return (P) bound;
                    }

                    @Override
                    public Class<?> configType(String name) {
                        return factory.configType(name);
                    }
                };
            }
        };
    }

    /** A provider as given, listening on loopback only. */
    private record OnLoopback(ClusterNetworkAddressConfigProvider provider) implements ClusterNetworkAddressConfigProvider {
        @Override
        public Optional<String> getBindAddress() {
            return Optional.of(LOOPBACK);
        }

        @Override
        public HostPort getClusterBootstrapAddress() {
            return provider.getClusterBootstrapAddress();
        }

        @Override
        public HostPort getBrokerAddress(int nodeId) {
            return provider.getBrokerAddress(nodeId);
        }

        @Override
        public HostPort getAdvertisedBrokerAddress(int nodeId) {
            return provider.getAdvertisedBrokerAddress(nodeId);
        }

        @Override
        public Integer getBrokerIdFromBrokerAddress(HostPort brokerAddress) {
            return provider.getBrokerIdFromBrokerAddress(brokerAddress);
        }

        @Override
        public boolean requiresServerNameIndication() {
            return provider.requiresServerNameIndication();
        }

        @Override
        public Set<Integer> getExclusivePorts() {
            return provider.getExclusivePorts();
        }

        @Override
        public Set<Integer> getSharedPorts() {
            return provider.getSharedPorts();
        }

        @Override
        public Map<Integer, HostPort> discoveryAddressMap() {
            return provider.discoveryAddressMap();
        }
    }
}
