import { kafkaConformance } from './conformance.js';

kafkaConformance(2);
